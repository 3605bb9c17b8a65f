package wordvec

import (
	"math"
	"testing"
)

func cos(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s // both unit length
}

func load(t *testing.T) *Table {
	t.Helper()
	tab, err := Load(GloVe6B100d50k)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestTableLoads(t *testing.T) {
	tab := load(t)
	if tab.Len() != 50000 || tab.Dim() != Dim(GloVe6B100d50k) {
		t.Fatalf("%d words × %d, want 50000 × %d", tab.Len(), tab.Dim(), Dim(GloVe6B100d50k))
	}
	// The list is by frequency: "the" first.
	if r, ok := tab.Row("the"); !ok || r != 0 || tab.Word(0) != "the" {
		t.Errorf(`row of "the" = %d, %v`, r, ok)
	}
	if v := tab.Vector("refund"); v == nil || math.Abs(cos(v, v)-1) > 1e-6 {
		t.Errorf(`"refund" missing or not unit length`)
	}
	if tab.Vector("Refund") != nil || tab.Vector("qwxzvbnmk") != nil {
		t.Error("upper case or nonsense words found: the table is lowercase words only")
	}
	if _, err := Load("nope"); err == nil {
		t.Error("unknown table loaded")
	}
	if t2 := load(t); t2 != tab {
		t.Error("table decoded twice")
	}
}

// The vectors carry meaning: related words are closer than unrelated ones.
func TestNeighbours(t *testing.T) {
	tab := load(t)
	for _, c := range [][3]string{
		// word, closer, farther
		{"refund", "reimbursement", "football"},
		{"card", "credit", "mattress"},
		{"delivery", "shipping", "poetry"},
		{"angry", "furious", "delicious"},
		{"pillow", "mattress", "loan"},
	} {
		w, near, far := tab.Vector(c[0]), tab.Vector(c[1]), tab.Vector(c[2])
		if w == nil || near == nil || far == nil {
			t.Fatalf("%v: word missing", c)
		}
		if cn, cf := cos(w, near), cos(w, far); cn <= cf {
			t.Errorf("cos(%s, %s) = %.3f ≤ cos(%s, %s) = %.3f", c[0], c[1], cn, c[0], c[2], cf)
		}
	}
	// The nearest of a few hundred frequent words to "money" is a money word.
	money := tab.Vector("money")
	best, bestCos := "", -2.0
	for r := 100; r < 2000; r++ {
		w := tab.Word(r)
		if w == "money" {
			continue
		}
		if c := cos(money, tab.Vector(w)); c > bestCos {
			best, bestCos = w, c
		}
	}
	if best != "cash" && best != "funds" && best != "pay" && best != "paid" {
		t.Errorf(`nearest to "money" among rows 100–2000 is %q (%.3f)`, best, bestCos)
	}
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Decode(bytesReader()); err != nil {
			b.Fatal(err)
		}
	}
}
