package kafkaadmin

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// GroupStatus is what the group coordinator says about a consumer group.
type GroupStatus struct {
	State   string // Empty, Stable, PreparingRebalance, CompletingRebalance, Dead; "Dead" for an unknown group
	Members []GroupMember
}

// GroupMember is one consumer in a group.
type GroupMember struct {
	ID   string // the member id the coordinator gave it
	Host string // where it connects from, e.g. "/10.0.0.7"
}

// Idle reports whether no consumer is in the group: nobody can be consuming
// or committing.
func (g GroupStatus) Idle() bool {
	return len(g.Members) == 0 && (g.State == "Empty" || g.State == "Dead" || g.State == "")
}

// DescribeGroup asks the group's coordinator for its state and members. A
// group that does not exist is reported as Dead with no members.
func DescribeGroup(ctx context.Context, c *kafka.Client, group string) (GroupStatus, error) {
	res, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return GroupStatus{}, fmt.Errorf("describe group %s: %w", group, err)
	}
	for _, g := range res.Groups {
		if g.GroupID != group {
			continue
		}
		if g.Error != nil {
			if errors.Is(g.Error, kafka.GroupIdNotFound) {
				return GroupStatus{State: "Dead"}, nil
			}
			return GroupStatus{}, fmt.Errorf("describe group %s: %w", group, g.Error)
		}
		st := GroupStatus{State: g.GroupState}
		for _, m := range g.Members {
			st.Members = append(st.Members, GroupMember{ID: m.MemberID, Host: m.ClientHost})
		}
		return st, nil
	}
	return GroupStatus{State: "Dead"}, nil
}
