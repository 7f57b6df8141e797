-- Leases that expired a day ago are deleted by the sweep (the audit log
-- keeps every fetch): an index by expiry finds them. It replaces the index
-- by subject, which no query used (a subject's leases are listed within
-- the tenant's), so a fetch still writes the same number of index entries.
DROP INDEX leases_by_subject;
CREATE INDEX leases_by_expiry ON leases (expires_at);
