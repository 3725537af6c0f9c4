package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRescoreFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    rescoreFlags
		wantErr string
	}{
		{args: nil, want: rescoreFlags{}},
		{args: []string{"--from", "beginning", "--switch", "--batch", "500", "--rules", "r.yaml", "--config", "c.yaml"},
			want: rescoreFlags{config: "c.yaml", rules: "r.yaml", apply: true, batch: 500}},
		{args: []string{"--from", "2026-12-01T00:00:00Z"},
			want: rescoreFlags{from: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}},
		{args: []string{"--from", "yesterday"}, wantErr: `--from "yesterday": give 'beginning' or an RFC 3339 time`},
		{args: []string{"--batch", "-1"}, wantErr: "--batch -1: give a positive number"},
		{args: []string{"now"}, wantErr: `unexpected argument "now"`},
		{args: []string{"--dry-run"}, wantErr: "flag provided but not defined: -dry-run"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseRescoreFlags(tc.args, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.from.Equal(tc.want.from) || got.config != tc.want.config || got.rules != tc.want.rules ||
				got.apply != tc.want.apply || got.batch != tc.want.batch {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRescoreRefusesInvalidRulesBeforeConnecting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte("version: v2\nrules: []\nbands: []\nstages: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEADSCORE_KAFKA_BROKERS", "127.0.0.1:1") // nothing listens: a connection would fail differently
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"rescore", "--rules", path}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "invalid rules in "+path) {
		t.Fatalf("err %v, want the rules file's problems", err)
	}
	if !strings.Contains(err.Error(), "bands") {
		t.Errorf("the error does not name the field: %v", err)
	}
}
