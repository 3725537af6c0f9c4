package scorer_test

import (
	"testing"

	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/scorer/storetest"
)

func TestMemStoreContract(t *testing.T) {
	// One store for every subtest: the suite's lead ids keep them apart, and
	// sharing also checks that they do.
	s := scorer.NewMemStore()
	storetest.Run(t, func(*testing.T) scorer.Store { return s })
}
