package rescore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// maxAttempts bounds the compare-and-set retries of one page of leads. The
// service is stopped during a switch, so a conflict means something else
// writes the live prefix.
const maxAttempts = 8

// lead is one replayed lead on its way to the live state.
type lead struct {
	id   string
	next scorer.LeadState // the replayed state, decayed to now
	live scorer.Stored
	net  []scorer.Transition
}

// comparePage handles one page of replayed leads: it compares each with its
// live state and, for a switch, publishes the net transitions and then
// writes the new states over the live ones.
func (r *run) comparePage(ctx context.Context, ids []string) error {
	fresh := ids[:0]
	for _, id := range ids {
		if _, dup := r.seen[id]; !dup { // SCAN may hand a key out twice
			r.seen[id] = struct{}{}
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	replayed, err := r.scratch.Load(ctx, fresh)
	if err != nil {
		return fmt.Errorf("load replayed leads: %w", err)
	}
	lives, err := r.liveSt.Load(ctx, fresh)
	if err != nil {
		return fmt.Errorf("load live leads: %w", err)
	}
	page := make([]lead, 0, len(fresh))
	for i, id := range fresh {
		if !replayed[i].Found {
			continue
		}
		l := lead{id: id, next: replayed[i].State, live: lives[i]}
		if err := errors.Join(l.next.DecodeLists(id), l.live.State.DecodeLists(id)); err != nil {
			return err
		}
		r.decayToNow(&l)
		l.net = r.netTransitions(&l)
		r.count(&l)
		page = append(page, l)
	}
	if r.o.Switch {
		return r.switchPage(ctx, page)
	}
	return nil
}

// decayToNow moves the replayed state to now under the new rules, as the
// decay scheduler would have, so that a lead whose band decay has changed
// since its last event gets one net transition to where it is now. The
// decay transitions this finds are not published, so they are not kept in
// the lead's history either.
func (r *run) decayToNow(l *lead) {
	hist := slices.Clone(l.next.History)
	r.next.Tick(l.id, &l.next, r.now, nil)
	l.next.History = hist
}

// netTransitions are the changes a consumer of the transitions topic has to
// learn: from the band and stage the live state holds (what it was last
// told) to the replayed ones. A lead with no live state is where every new
// lead starts.
func (r *run) netTransitions(l *lead) []scorer.Transition {
	fromBand, fromStage := r.first[0], r.first[1]
	if l.live.Found {
		fromBand, fromStage = l.live.State.Band, l.live.State.Stage
	}
	score := math.Round(r.next.ScoreAt(&l.next, r.now)*100) / 100
	var out []scorer.Transition
	add := func(kind scorer.Kind, from, to string) {
		if from == to {
			return
		}
		cause := CauseEventID(r.next.Version())
		out = append(out, scorer.Transition{
			ID:             scorer.TransitionID(l.id, cause, kind, from, to),
			LeadID:         l.id,
			Kind:           kind,
			From:           from,
			To:             to,
			Score:          score,
			OccurredAt:     r.now,
			CauseEventID:   cause,
			CauseEventType: CauseEventType,
			RulesVersion:   r.next.Version(),
		})
	}
	add(scorer.KindBand, fromBand, l.next.Band) // band first, as the scorer emits them
	add(scorer.KindStage, fromStage, l.next.Stage)
	return out
}

func (r *run) count(l *lead) {
	r.rep.Leads++
	if !l.live.Found {
		r.rep.NewLeads++
	}
	if len(l.net) > 0 {
		r.rep.Changed++
	}
	for _, t := range l.net {
		if t.Kind == scorer.KindBand {
			r.band.add(t.From, t.To, l.id)
		} else {
			r.stage.add(t.From, t.To, l.id)
		}
	}
}

// switchPage publishes the page's net transitions (acks=all) and only then
// compare-and-sets the new states over the live ones: a crash in between
// leaves the live state as it was, and running the switch again publishes
// the same transition ids. A lead whose live state changed meanwhile is
// reloaded and compared again.
func (r *run) switchPage(ctx context.Context, page []lead) error {
	topic := r.o.Config.Kafka.OutputTopic
	for attempt := 0; len(page) > 0; attempt++ {
		if attempt == maxAttempts {
			return fmt.Errorf("switch: %w (%d leads)", scorer.ErrTooManyConflicts, len(page))
		}
		var msgs []kafka.Message
		for i := range page {
			for j := range page[i].net {
				msgs = append(msgs, sink.Transition(topic, &page[i].net[j]))
			}
		}
		if err := r.pub.Publish(ctx, msgs); err != nil {
			return fmt.Errorf("switch: %w", err)
		}
		writes := make([]scorer.Write, len(page))
		states := make([]scorer.LeadState, len(page))
		for i := range page {
			l := &page[i]
			states[i] = l.next
			// The lead's history is what its consumers were told: the live
			// transitions, then the net ones, counted as made by this save.
			// Trimmed as the scorer trims: the live pipeline's latest saves
			// may still be publishing theirs.
			saves := l.live.State.Saves + 1
			h := slices.Clone(l.live.State.History)
			for _, t := range l.net {
				t.Save = saves
				h = append(h, t)
			}
			states[i].History = r.next.TrimHistory(h, saves)
			states[i].Saves = saves
			writes[i] = scorer.Write{LeadID: l.id, Version: l.live.Version, State: &states[i],
				NextChange: r.next.NextChange(&states[i]), Schedule: true}
		}
		ok, err := r.liveSt.Save(ctx, writes)
		if err != nil {
			return fmt.Errorf("switch: save lead states: %w", err)
		}
		// Save only moves schedule entries earlier; the new rules may decay
		// a lead later than the old ones did, or never.
		var due []scorer.Due
		var retry []lead
		for i := range page {
			if ok[i] {
				r.rep.Published += len(page[i].net)
				due = append(due, scorer.Due{LeadID: page[i].id, At: writes[i].NextChange})
			} else {
				retry = append(retry, page[i])
			}
		}
		if err := r.liveSt.RescheduleAll(ctx, due); err != nil {
			return fmt.Errorf("switch: %w", err)
		}
		if len(retry) == 0 {
			return nil
		}
		ids := make([]string, len(retry))
		for i := range retry {
			ids[i] = retry[i].id
		}
		lives, err := r.liveSt.Load(ctx, ids)
		if err != nil {
			return fmt.Errorf("switch: reload live leads: %w", err)
		}
		for i := range retry {
			retry[i].live = lives[i]
			retry[i].net = r.netTransitions(&retry[i])
		}
		page = retry
	}
	return nil
}

// onlyLive counts the live leads the replay did not see: they keep their
// live state.
func (r *run) onlyLive(ids []string) error {
	for _, id := range ids {
		if _, ok := r.seen[id]; ok {
			continue
		}
		r.seen[id] = struct{}{} // SCAN may hand a key out twice
		r.rep.OnlyLive++
		if len(r.rep.OnlyLiveExamples) < maxExamples {
			r.rep.OnlyLiveExamples = append(r.rep.OnlyLiveExamples, id)
		}
	}
	return nil
}
