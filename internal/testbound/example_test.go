package testbound_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
)

func TestWithinAndEventually(t *testing.T) {
	var done atomic.Bool
	testbound.Within(t, 10*time.Second, "a call that returns", func() { done.Store(true) })
	testbound.Eventually(t, 10*time.Second, "the flag", done.Load)
}
