package chaos

import (
	_ "embed"
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/leadscore/leadscore/scorer"
)

// RulesYAML is the suite's rules file: plain points per type, bands with
// hysteresis, stages with from + min_score / on_events. Nothing else, so that
// Reference stays small and independent of scorer.Model.
//
//go:embed testdata/rules.yaml
var RulesYAML []byte

// refRules is the subset of the rules format the reference understands.
type refRules struct {
	Rules []struct {
		Type   string  `yaml:"type"`
		Points float64 `yaml:"points"`
	} `yaml:"rules"`
	Bands []struct {
		Name string   `yaml:"name"`
		Min  float64  `yaml:"min"`
		Exit *float64 `yaml:"exit"`
	} `yaml:"bands"`
	Stages []struct {
		Name     string   `yaml:"name"`
		From     []string `yaml:"from"`
		MinScore *float64 `yaml:"min_score"`
		OnEvents []string `yaml:"on_events"`
	} `yaml:"stages"`
}

// Input is one good input record as Kafka stored it, reduced to what scoring reads.
type Input struct {
	EventID, LeadID, Type string
}

// LeadResult is a lead's expected final state.
type LeadResult struct {
	Score       float64
	Band, Stage string
	Events      uint64 // applied events (producer duplicates excluded)
}

// Reference computes, from each lead's records in the order Kafka stored
// them (all of a lead's records share a partition: they are keyed by lead),
// every lead's final state and the ids of every transition that must appear.
// Dedupe: an event id counts once while it is among the lead's last `window`
// distinct event ids.
func Reference(rulesYAML []byte, window int, byLead map[string][]Input) (map[string]LeadResult, map[string]bool, error) {
	var r refRules
	if err := yaml.Unmarshal(rulesYAML, &r); err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	points := map[string]float64{}
	for _, x := range r.Rules {
		points[x.Type] += x.Points
	}
	enter := make([]float64, len(r.Bands))
	exit := make([]float64, len(r.Bands))
	for i, b := range r.Bands {
		enter[i], exit[i] = b.Min, b.Min
		if b.Exit != nil {
			exit[i] = *b.Exit
		}
	}
	stageIdx := map[string]int{}
	for i, s := range r.Stages {
		stageIdx[s.Name] = i
	}

	states := map[string]LeadResult{}
	ids := map[string]bool{}
	for lead, in := range byLead {
		var recent []string
		score, band, stage := 0.0, 0, 0
		var n uint64
		for _, e := range in {
			dup := false
			for _, id := range recent {
				dup = dup || id == e.EventID
			}
			if dup {
				continue
			}
			recent = append(recent, e.EventID)
			if len(recent) > window {
				recent = recent[1:]
			}
			n++
			score += points[e.Type]
			judged := math.Round(score*100) / 100

			nb := band
			up := false
			for j := len(r.Bands) - 1; j > band; j-- {
				if judged >= enter[j] {
					nb, up = j, true
					break
				}
			}
			if !up && band > 0 && judged < exit[band] {
				nb = 0
				for j := band - 1; j > 0; j-- {
					if judged >= exit[j] {
						nb = j
						break
					}
				}
			}
			if nb != band {
				ids[scorer.TransitionID(lead, e.EventID, scorer.KindBand, r.Bands[band].Name, r.Bands[nb].Name)] = true
				band = nb
			}

			ns := stage
			for j := len(r.Stages) - 1; j > 0; j-- {
				s := r.Stages[j]
				if j == stage || !contains(s.From, r.Stages[stage].Name) {
					continue
				}
				if (s.MinScore != nil && judged >= *s.MinScore) || contains(s.OnEvents, e.Type) {
					ns = j
					break
				}
			}
			if ns != stage {
				ids[scorer.TransitionID(lead, e.EventID, scorer.KindStage, r.Stages[stage].Name, r.Stages[ns].Name)] = true
				stage = ns
			}
		}
		states[lead] = LeadResult{Score: math.Round(score*100) / 100, Band: r.Bands[band].Name, Stage: r.Stages[stage].Name, Events: n}
	}
	return states, ids, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
