package language

import (
	"strings"

	"github.com/pemistahl/lingua-go"
)

// linguaDetector is the detector the classifier used before NGram
// (lingua-go, low-accuracy mode), kept in the tests to compare accuracy and
// speed on the same texts.
type linguaDetector struct {
	d lingua.LanguageDetector
}

func newLingua(codes []string) (*linguaDetector, error) {
	codes, err := checkCodes(codes)
	if err != nil {
		return nil, err
	}
	var iso []lingua.IsoCode639_1
	for _, c := range codes {
		iso = append(iso, lingua.GetIsoCode639_1FromValue(c))
	}
	return &linguaDetector{lingua.NewLanguageDetectorBuilder().
		FromIsoCodes639_1(iso...).
		WithLowAccuracyMode().
		WithPreloadedLanguageModels().
		Build()}, nil
}

func (l *linguaDetector) Detect(text string) (string, float64) {
	values := l.d.ComputeLanguageConfidenceValues(prefix(text, maxRunes))
	if len(values) == 0 || values[0].Value() == 0 {
		return "", 0
	}
	return strings.ToLower(values[0].Language().IsoCode639_1().String()), values[0].Value()
}
