//go:build ignore

// gen_common builds data/common-passwords.txt.gz from SecLists'
// 10-million-password-list-top-1000000 (see data/NOTICE.md for where that
// file comes from). Run from this directory:
//
//	go run gen_common.go -src /path/to/10_million_password_list_top_1M.txt
//
// It keeps the 100,000 most common passwords, plus every password of at least
// 12 characters in the whole top million: with a 12-character minimum length
// only 489 of the top 100,000 could ever match, and the long tail is what a
// user who obeys the length rule actually picks. Entries are lowercased,
// deduplicated and sorted bytewise, one per line, so the package can load
// them without sorting and look them up by binary search.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"flag"
	"log"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

const (
	top       = 100_000
	longRunes = 12
)

func main() {
	src := flag.String("src", "", "SecLists 10 million password list, top 1,000,000, most common first")
	out := flag.String("out", "data/common-passwords.txt.gz", "output file")
	flag.Parse()
	f, err := os.Open(*src)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	seen := make(map[string]bool)
	var list []string
	sc := bufio.NewScanner(f)
	for n := 0; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || !utf8.ValidString(line) || strings.ContainsAny(line, "\n\x00") {
			continue
		}
		if n >= top && utf8.RuneCountInString(line) < longRunes {
			continue
		}
		w := strings.ToLower(line)
		if !seen[w] {
			seen[w] = true
			list = append(list, w)
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	slices.Sort(list)

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range list {
		zw.Write([]byte(w))
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("%d passwords, %d bytes compressed", len(list), buf.Len())
}
