package demo

import "testing"

func BenchmarkGeneratorNext(b *testing.B) {
	g := NewGenerator(Options{Seed: 1, Now: fixedClock})
	var bytes int64
	b.ReportAllocs()
	for b.Loop() {
		bytes += int64(len(g.Next().Value))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
