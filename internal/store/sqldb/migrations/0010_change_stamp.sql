-- The installation's change stamp, for engines that several processes
-- write (PostgreSQL nodes): every transaction that changes anything but the
-- audit and lease tables increments it just before it commits, so a node
-- can tell whether a value it cached is still current (sqldb/stamp.go).
CREATE TABLE change_stamp (
    id INTEGER PRIMARY KEY,
    n  BIGINT NOT NULL
);
INSERT INTO change_stamp (id, n) VALUES (1, 0);
