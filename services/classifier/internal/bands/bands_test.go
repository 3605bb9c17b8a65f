package bands

import (
	"testing"

	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func TestNPSBoundaries(t *testing.T) {
	want := map[int32]feedloopv1.NpsBand{
		-1: feedloopv1.NpsBand_NPS_BAND_UNSPECIFIED,
		0:  feedloopv1.NpsBand_NPS_BAND_DETRACTOR,
		6:  feedloopv1.NpsBand_NPS_BAND_DETRACTOR,
		7:  feedloopv1.NpsBand_NPS_BAND_PASSIVE,
		8:  feedloopv1.NpsBand_NPS_BAND_PASSIVE,
		9:  feedloopv1.NpsBand_NPS_BAND_PROMOTER,
		10: feedloopv1.NpsBand_NPS_BAND_PROMOTER,
		11: feedloopv1.NpsBand_NPS_BAND_UNSPECIFIED,
	}
	for score, band := range want {
		if got := NPS(score); got != band {
			t.Errorf("NPS(%d) = %v, want %v", score, got, band)
		}
	}
}

func TestCSATBoundaries(t *testing.T) {
	want := map[int32]feedloopv1.CsatBand{
		0: feedloopv1.CsatBand_CSAT_BAND_UNSPECIFIED,
		1: feedloopv1.CsatBand_CSAT_BAND_UNSATISFIED,
		2: feedloopv1.CsatBand_CSAT_BAND_UNSATISFIED,
		3: feedloopv1.CsatBand_CSAT_BAND_NEUTRAL,
		4: feedloopv1.CsatBand_CSAT_BAND_SATISFIED,
		5: feedloopv1.CsatBand_CSAT_BAND_SATISFIED,
		6: feedloopv1.CsatBand_CSAT_BAND_UNSPECIFIED,
	}
	for score, band := range want {
		if got := CSAT(score); got != band {
			t.Errorf("CSAT(%d) = %v, want %v", score, got, band)
		}
	}
}

func TestCESBoundaries(t *testing.T) {
	want := map[int32]feedloopv1.CesBand{
		0: feedloopv1.CesBand_CES_BAND_UNSPECIFIED,
		1: feedloopv1.CesBand_CES_BAND_HIGH_EFFORT,
		3: feedloopv1.CesBand_CES_BAND_HIGH_EFFORT,
		4: feedloopv1.CesBand_CES_BAND_MEDIUM_EFFORT,
		5: feedloopv1.CesBand_CES_BAND_MEDIUM_EFFORT,
		6: feedloopv1.CesBand_CES_BAND_LOW_EFFORT,
		7: feedloopv1.CesBand_CES_BAND_LOW_EFFORT,
		8: feedloopv1.CesBand_CES_BAND_UNSPECIFIED,
	}
	for score, band := range want {
		if got := CES(score); got != band {
			t.Errorf("CES(%d) = %v, want %v", score, got, band)
		}
	}
}

func TestOfLeavesAbsentAnswersUnspecified(t *testing.T) {
	got := Of(&feedloopv1.Feedback{Csat: proto.Int32(0)})
	if got != (Bands{}) {
		t.Errorf("Of(csat=0) = %+v, want all unspecified", got)
	}
	got = Of(&feedloopv1.Feedback{Nps: proto.Int32(0), Ces: proto.Int32(7)})
	want := Bands{NPS: feedloopv1.NpsBand_NPS_BAND_DETRACTOR, CES: feedloopv1.CesBand_CES_BAND_LOW_EFFORT}
	if got != want {
		t.Errorf("Of(nps=0, ces=7) = %+v, want %+v", got, want)
	}
}

func TestSentimentPrecedence(t *testing.T) {
	neg, neu, pos := feedloopv1.Sentiment_SENTIMENT_NEGATIVE, feedloopv1.Sentiment_SENTIMENT_NEUTRAL, feedloopv1.Sentiment_SENTIMENT_POSITIVE
	i := proto.Int32
	tests := []struct {
		name string
		fb   *feedloopv1.Feedback
		want feedloopv1.Sentiment
		ok   bool
	}{
		{"none", &feedloopv1.Feedback{}, feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED, false},
		{"nps detractor", &feedloopv1.Feedback{Nps: i(6)}, neg, true},
		{"nps passive", &feedloopv1.Feedback{Nps: i(7)}, neu, true},
		{"nps promoter", &feedloopv1.Feedback{Nps: i(9)}, pos, true},
		{"nps wins over csat", &feedloopv1.Feedback{Nps: i(10), Csat: i(1)}, pos, true},
		{"csat unsatisfied", &feedloopv1.Feedback{Csat: i(2)}, neg, true},
		{"csat neutral", &feedloopv1.Feedback{Csat: i(3)}, neu, true},
		{"csat satisfied", &feedloopv1.Feedback{Csat: i(4)}, pos, true},
		{"csat wins over ces", &feedloopv1.Feedback{Csat: i(1), Ces: i(7)}, neg, true},
		{"ces high effort", &feedloopv1.Feedback{Ces: i(3)}, neg, true},
		{"ces medium", &feedloopv1.Feedback{Ces: i(4)}, neu, true},
		{"ces low effort", &feedloopv1.Feedback{Ces: i(6)}, pos, true},
		{"out-of-range nps falls through to ces", &feedloopv1.Feedback{Nps: i(42), Ces: i(1)}, neg, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Of(tt.fb).Sentiment()
			if got != tt.want || ok != tt.ok {
				t.Errorf("Sentiment() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
