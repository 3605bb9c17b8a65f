package kpichart

import (
	"testing"
	"time"
)

func TestBarsScaleToTheTallest(t *testing.T) {
	d0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	days := []time.Time{d0, d0.AddDate(0, 0, 1)}
	c := Bars(days, Series{Name: "Routed", Values: []float64{4, 10}}, Series{Name: "Closed", Values: []float64{0, 5}})
	if c.Empty || len(c.Rects) != 4 {
		t.Fatalf("got %+v", c)
	}
	tall, half := c.Rects[2], c.Rects[3]
	if tall.H != Height-padBot-padTop || half.H != tall.H/2 {
		t.Errorf("heights %g and %g, want full and half", tall.H, half.H)
	}
	if tall.Title != "2 May: 10 routed" {
		t.Errorf("title %q", tall.Title)
	}
}

func TestEmptyWithoutData(t *testing.T) {
	if !Bars(nil).Empty || !Trend([]time.Time{time.Now()}, Series{Values: []float64{0}}, 1, 5).Empty {
		t.Error("want empty charts")
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{1: 1, 3: 5, 7: 10, 11: 20, 45: 50, 101: 200} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%g) = %g, want %g", in, got, want)
		}
	}
}
