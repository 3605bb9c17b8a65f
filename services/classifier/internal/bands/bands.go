// Package bands maps survey scores to their standard bands and to the
// sentiment they express. Everything here is a pure function.
package bands

import (
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// NPS returns the Net Promoter band of a 0..10 answer: 0–6 detractor,
// 7–8 passive, 9–10 promoter; anything else is unspecified.
func NPS(score int32) feedloopv1.NpsBand {
	switch {
	case score >= 0 && score <= 6:
		return feedloopv1.NpsBand_NPS_BAND_DETRACTOR
	case score >= 7 && score <= 8:
		return feedloopv1.NpsBand_NPS_BAND_PASSIVE
	case score >= 9 && score <= 10:
		return feedloopv1.NpsBand_NPS_BAND_PROMOTER
	}
	return feedloopv1.NpsBand_NPS_BAND_UNSPECIFIED
}

// CSAT returns the band of a 1..5 satisfaction answer: 1–2 unsatisfied,
// 3 neutral, 4–5 satisfied; anything else is unspecified.
func CSAT(score int32) feedloopv1.CsatBand {
	switch {
	case score >= 1 && score <= 2:
		return feedloopv1.CsatBand_CSAT_BAND_UNSATISFIED
	case score == 3:
		return feedloopv1.CsatBand_CSAT_BAND_NEUTRAL
	case score >= 4 && score <= 5:
		return feedloopv1.CsatBand_CSAT_BAND_SATISFIED
	}
	return feedloopv1.CsatBand_CSAT_BAND_UNSPECIFIED
}

// CES returns the band of a 1..7 effort answer (7 = very easy): 1–3 high
// effort, 4–5 medium, 6–7 low effort; anything else is unspecified.
func CES(score int32) feedloopv1.CesBand {
	switch {
	case score >= 1 && score <= 3:
		return feedloopv1.CesBand_CES_BAND_HIGH_EFFORT
	case score >= 4 && score <= 5:
		return feedloopv1.CesBand_CES_BAND_MEDIUM_EFFORT
	case score >= 6 && score <= 7:
		return feedloopv1.CesBand_CES_BAND_LOW_EFFORT
	}
	return feedloopv1.CesBand_CES_BAND_UNSPECIFIED
}

// Bands are the bands of one feedback item's answers.
type Bands struct {
	NPS  feedloopv1.NpsBand
	CSAT feedloopv1.CsatBand
	CES  feedloopv1.CesBand
}

// Of returns the bands of the answers fb carries; absent answers stay
// unspecified.
func Of(fb *feedloopv1.Feedback) Bands {
	var b Bands
	if fb.Nps != nil {
		b.NPS = NPS(fb.GetNps())
	}
	if fb.Csat != nil {
		b.CSAT = CSAT(fb.GetCsat())
	}
	if fb.Ces != nil {
		b.CES = CES(fb.GetCes())
	}
	return b
}

// ScoreConfidence is the sentiment confidence of a band: the customer rated
// the experience themselves, so there is nothing to guess.
const ScoreConfidence = 1.0

// Sentiment returns the sentiment the answers express, taking NPS first,
// then CSAT, then CES (the order of how much each says about the customer's
// overall feeling). ok is false when no answer has a band.
func (b Bands) Sentiment() (s feedloopv1.Sentiment, ok bool) {
	switch b.NPS {
	case feedloopv1.NpsBand_NPS_BAND_DETRACTOR:
		return feedloopv1.Sentiment_SENTIMENT_NEGATIVE, true
	case feedloopv1.NpsBand_NPS_BAND_PASSIVE:
		return feedloopv1.Sentiment_SENTIMENT_NEUTRAL, true
	case feedloopv1.NpsBand_NPS_BAND_PROMOTER:
		return feedloopv1.Sentiment_SENTIMENT_POSITIVE, true
	}
	switch b.CSAT {
	case feedloopv1.CsatBand_CSAT_BAND_UNSATISFIED:
		return feedloopv1.Sentiment_SENTIMENT_NEGATIVE, true
	case feedloopv1.CsatBand_CSAT_BAND_NEUTRAL:
		return feedloopv1.Sentiment_SENTIMENT_NEUTRAL, true
	case feedloopv1.CsatBand_CSAT_BAND_SATISFIED:
		return feedloopv1.Sentiment_SENTIMENT_POSITIVE, true
	}
	switch b.CES {
	case feedloopv1.CesBand_CES_BAND_HIGH_EFFORT:
		return feedloopv1.Sentiment_SENTIMENT_NEGATIVE, true
	case feedloopv1.CesBand_CES_BAND_MEDIUM_EFFORT:
		return feedloopv1.Sentiment_SENTIMENT_NEUTRAL, true
	case feedloopv1.CesBand_CES_BAND_LOW_EFFORT:
		return feedloopv1.Sentiment_SENTIMENT_POSITIVE, true
	}
	return feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED, false
}
