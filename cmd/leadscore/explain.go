package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/internal/explain"
	"github.com/leadscore/leadscore/internal/httpapi"
)

const explainUsage = `Usage:
  leadscore explain LEAD [--api URL] [--config FILE]

Asks a running leadscore (leadscore run or leadscore dev) for LEAD and shows its
score, band, stage, when decay will next change its band, the rules that make
up its score, and its recent score changes and transitions.

Flags:
  --api URL      the service's HTTP address (default: http:// + http.addr of the
                 configuration, i.e. LEADSCORE_HTTP_ADDR or http://127.0.0.1:8080)
  --config FILE  the service's configuration, for http.addr and the band order
                 (default: LEADSCORE_CONFIG, else the built-in defaults)
`

// explainTimeout bounds the whole request: the API answers from one Redis read.
const explainTimeout = 10 * time.Second

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, explainUsage) }
	api := fs.String("api", "", "the service's HTTP address")
	cfgPath := fs.String("config", "", "the service's configuration")
	leads, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(leads) != 1 || leads[0] == "" || len(leads[0]) > 256 {
		fs.Usage()
		return errors.New("explain: name one lead id (1 to 256 bytes)")
	}
	lead := leads[0]

	// The configuration only helps: it names the address and the band order.
	// One given explicitly must load; the implicit one may be absent or broken.
	path := *cfgPath
	if path == "" {
		path = os.Getenv("LEADSCORE_CONFIG")
	}
	cfg, cfgErr := config.Load(path, os.LookupEnv)
	if cfgErr != nil && *cfgPath != "" {
		return cfgErr
	}
	var bands []string
	if cfgErr == nil && len(cfg.Rules.Validate()) == 0 {
		for _, b := range cfg.Rules.Bands {
			bands = append(bands, b.Name)
		}
	}
	base := *api
	if base == "" {
		base = "http://127.0.0.1:8080"
		if cfgErr == nil {
			base = apiFromAddr(cfg.HTTP.Addr, base)
		}
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")

	v, err := fetchLead(ctx, base, lead)
	if err != nil {
		return err
	}
	return explain.Lead(stdout, v, explain.LeadOptions{Now: time.Now(), Loc: time.Local, Bands: bands})
}

// apiFromAddr turns a listen address into a URL to call: a listener on every
// interface (":8080", "0.0.0.0:8080") is reached on 127.0.0.1.
func apiFromAddr(addr, fallback string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fallback
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// fetchLead reads GET /v1/leads/{lead} and says plainly what went wrong.
func fetchLead(ctx context.Context, base, lead string) (*httpapi.LeadView, error) {
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/leads/"+url.PathEscape(lead), nil)
	if err != nil {
		return nil, fmt.Errorf("explain: --api %s: %w", base, err)
	}
	resp, err := (&http.Client{}).Do(req)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("no leadscore answers at %s (connection refused): start one with `leadscore run` or `leadscore dev`, or point --api at it", base)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("leadscore at %s did not answer within %s", base, explainTimeout)
	case err != nil:
		return nil, fmt.Errorf("cannot reach leadscore at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", base, err)
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var v httpapi.LeadView
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, fmt.Errorf("%s did not answer with a lead (%w): is --api pointing at leadscore?", base, err)
		}
		return &v, nil
	case json.Unmarshal(body, &apiErr) != nil || apiErr.Error == "":
		return nil, fmt.Errorf("%s answered %s for lead %s: is --api pointing at leadscore?", base, resp.Status, lead)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("unknown lead %s: leadscore at %s has seen no event for it", lead, base)
	}
	return nil, fmt.Errorf("leadscore at %s answered %s: %s", base, resp.Status, apiErr.Error)
}
