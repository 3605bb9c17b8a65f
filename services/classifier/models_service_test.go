package classifier_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/internal/modeltest"
	"github.com/feedloop/feedloop/services/classifier/model"
)

// saveModel writes m to path the way `feedloop classifier train` does
// (a temporary file renamed into place).
func saveModel(t testing.TB, m *model.Model, path string) {
	t.Helper()
	if err := m.SaveFile(path); err != nil {
		t.Fatal(err)
	}
}

func modelBytes(t testing.TB, m *model.Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// modelHarness is a classifier running with a topic model (and
// optionally a sentiment model) from files in a temporary directory.
type modelHarness struct {
	*harness
	topicPath, sentimentPath string
}

func startWithModels(t *testing.T, topic, sentiment *model.Model, modify func(*classifier.Config)) *modelHarness {
	t.Helper()
	dir := t.TempDir()
	mh := &modelHarness{topicPath: filepath.Join(dir, "topic.model")}
	saveModel(t, topic, mh.topicPath)
	if sentiment != nil {
		mh.sentimentPath = filepath.Join(dir, "sentiment.model")
		saveModel(t, sentiment, mh.sentimentPath)
	}
	mh.harness = startWith(t, modeltest.Rules, func(c *classifier.Config) {
		c.TopicModel, c.SentimentModel = mh.topicPath, mh.sentimentPath
		c.ModelPollInterval = 100 * time.Millisecond // the shortest Validate allows
		c.Languages = nil
		if modify != nil {
			modify(c)
		}
	})
	return mh
}

func TestModelClassificationsArePublished(t *testing.T) {
	topic, sentiment := modeltest.TrainTopic(t, nil), modeltest.TrainSentiment(t)
	h := startWithModels(t, topic, sentiment, nil)
	if h.svc.TopicModelVersion() != topic.Version() || h.svc.SentimentModelVersion() != sentiment.Version() {
		t.Fatalf("versions in force %q, %q", h.svc.TopicModelVersion(), h.svc.SentimentModelVersion())
	}
	wantVersion := "rules:m-1 topic:" + topic.Version() + " sentiment:" + sentiment.Version()

	byModel := receivedEvent("My package still hasn't been delivered and I hate it, awful")
	byRule := receivedEvent("My lawyer asks where the parcel is")
	unknown := receivedEvent("Wie spät ist es?")
	for _, in := range []*feedloopv1.Event{byModel, byRule, unknown} {
		h.publish(t, in)
	}
	classification := func(in *feedloopv1.Event) *feedloopv1.Classification {
		out, _ := h.classified(t, in)
		cls := out.GetClassified().GetClassification()
		if cls.GetModelVersion() != wantVersion {
			t.Errorf("model_version = %q, want %q", cls.GetModelVersion(), wantVersion)
		}
		return cls
	}

	cls := classification(byModel)
	if !slices.Equal(topics(cls), []string{"delivery"}) || cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_MODEL ||
		!(cls.GetTopics()[0].GetConfidence() >= modeltest.Threshold && cls.GetTopics()[0].GetConfidence() < 1) {
		t.Errorf("model topic: %v, source %v", cls.GetTopics(), cls.GetTopicSource())
	}
	if ev := modeltest.Evidence(cls); !slices.Contains(ev, "package") {
		t.Errorf("explanation = %q, want it to name \"package\"", ev)
	}
	if cls.GetSentiment() != feedloopv1.Sentiment_SENTIMENT_NEGATIVE || !(cls.GetSentimentConfidence() > 0 && cls.GetSentimentConfidence() < 1) {
		t.Errorf("sentiment = %v (%v), want negative with the model's probability", cls.GetSentiment(), cls.GetSentimentConfidence())
	}

	cls = classification(byRule)
	if !slices.Equal(topics(cls), []string{"legal"}) || !slices.Equal(cls.GetRuleIds(), []string{"legal"}) ||
		cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_RULES || len(cls.GetExplanation()) != 0 {
		t.Errorf("rules must win: topics %v, rule_ids %q, source %v, explanation %v", cls.GetTopics(), cls.GetRuleIds(), cls.GetTopicSource(), cls.GetExplanation())
	}

	cls = classification(unknown)
	if !slices.Equal(topics(cls), []string{"unknown"}) || cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_UNKNOWN {
		t.Errorf("out of scope: topics %v, source %v", cls.GetTopics(), cls.GetTopicSource())
	}
}

// streamTexts are what the load test sends, round robin.
var streamTexts = []string{
	"My package still hasn't been delivered", "The app crashes after the latest update",
	"Please cancel my subscription today", "I can't remember my password",
	"The invoice amount is wrong", "Thank you, the support was fantastic",
}

func TestModelHotReloadUnderLoad(t *testing.T) {
	v1 := modeltest.TrainTopic(t, nil)
	v2 := modeltest.TrainTopic(t, func(l string) string { return "v2-" + l })
	h := startWithModels(t, v1, nil, func(c *classifier.Config) { c.Concurrency = 4 })

	// A steady stream of items, published until stop is closed.
	var (
		mu        sync.Mutex
		published []*feedloopv1.Event
		swappedAt = -1 // the first item whose publishing began with v2 in force
	)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-time.After(2 * time.Millisecond):
			}
			if swapped := h.svc.TopicModelVersion() == v2.Version(); swapped {
				mu.Lock()
				if swappedAt < 0 {
					swappedAt = i
				}
				mu.Unlock()
			}
			in := receivedEvent(streamTexts[i%len(streamTexts)])
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			_, err := h.bus.Publish(ctx, bus.SubjectReceived, in)
			cancel()
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			published = append(published, in)
			mu.Unlock()
		}
	}()
	countPublished := func() int { mu.Lock(); defer mu.Unlock(); return len(published) }

	// Swap once the classifier is busy with the stream.
	testkit.Eventually(t, "20 items classified with v1", func() bool { return h.count(t, bus.SubjectClassified) >= 20 })
	saveModel(t, v2, h.topicPath)
	testkit.Eventually(t, "v2 in force", func() bool { return h.svc.TopicModelVersion() == v2.Version() })
	afterSwap := countPublished()
	testkit.Eventually(t, "50 more items published", func() bool { return countPublished() >= afterSwap+50 })
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n := countPublished()
	testkit.Eventually(t, "every item classified", func() bool { return h.count(t, bus.SubjectClassified) >= n })

	// Exactly once: one classified event per item, nothing redelivered,
	// nothing pending, nothing dead-lettered.
	c, err := h.bus.JetStream().Consumer(ctxT(t), bus.StreamFeedback, classifier.Durable)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "consumer settled", func() bool {
		info, err := c.Info(ctxT(t))
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if info, _ := c.Info(ctxT(t)); info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered, want 0", info.NumRedelivered)
	}
	if dead := h.messages(t, bus.StreamDLQ, bus.DLQSubject(classifier.Durable)); len(dead) != 0 {
		t.Errorf("%d dead letters, want none", len(dead))
	}
	out := map[string][]*feedloopv1.Classification{}
	for _, m := range h.messages(t, bus.StreamFeedback, bus.SubjectClassified) {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatal(err)
		}
		out[ev.GetId()] = append(out[ev.GetId()], ev.GetClassified().GetClassification())
	}
	if len(out) != n {
		t.Errorf("%d classified events for %d items", len(out), n)
	}

	// Each item carries one model's version and that model's topics (no
	// item mixes the two); every item published after the swap took
	// effect carries v2.
	versions := map[string]int{}
	for i, in := range published {
		got := out[bus.DeriveID(in.GetId(), "classified")]
		if len(got) != 1 {
			t.Errorf("item %d: %d classified events, want 1", i, len(got))
			continue
		}
		cls := got[0]
		var v string
		switch cls.GetModelVersion() {
		case "rules:m-1 topic:" + v1.Version():
			v = "v1"
		case "rules:m-1 topic:" + v2.Version():
			v = "v2"
		default:
			t.Fatalf("item %d: model_version %q is neither model", i, cls.GetModelVersion())
		}
		versions[v]++
		for _, topic := range topics(cls) {
			if topic != model.Unknown && strings.HasPrefix(topic, "v2-") != (v == "v2") {
				t.Errorf("item %d: topic %q from a model other than %s", i, topic, v)
			}
		}
		if i >= swappedAt && v != "v2" {
			t.Errorf("item %d published after the swap (from item %d) classified by v1", i, swappedAt)
		}
	}
	t.Logf("%d items: %v; v2 in force from item %d", n, versions, swappedAt)
	if versions["v1"] < 20 || versions["v2"] < 50 {
		t.Errorf("versions %v: want at least 20 items by v1 and 50 by v2", versions)
	}
	if !h.logs.contains("model reloaded", "previous_version="+v1.Version(), "model_version="+v2.Version()) {
		t.Error("the reload was not logged")
	}
}

func TestBadModelReplacementKeepsTheModelInForce(t *testing.T) {
	topic, sentiment := modeltest.TrainTopic(t, nil), modeltest.TrainSentiment(t)
	h := startWithModels(t, topic, sentiment, nil)
	wantVersion := "rules:m-1 topic:" + topic.Version() + " sentiment:" + sentiment.Version()
	check := func(when string) {
		t.Helper()
		in := receivedEvent("My package still hasn't been delivered")
		h.publish(t, in)
		out, _ := h.classified(t, in)
		cls := out.GetClassified().GetClassification()
		if cls.GetModelVersion() != wantVersion || !slices.Equal(topics(cls), []string{"delivery"}) {
			t.Errorf("%s: model_version %q, topics %q; want the models in force kept", when, cls.GetModelVersion(), topics(cls))
		}
	}

	// One flipped byte: the checksum catches it.
	corrupt := modelBytes(t, modeltest.TrainTopic(t, func(l string) string { return "v2-" + l }))
	corrupt[len(corrupt)-10] ^= 0xff
	writeFile(t, h.topicPath, string(corrupt))
	testkit.Eventually(t, "topic reload failure logged", func() bool {
		return h.logs.contains("model reload failed", "CLASSIFIER_TOPIC_MODEL", "checksum mismatch", "model_version="+topic.Version())
	})
	check("after a corrupt topic model")

	// A valid model with the wrong labels for its slot.
	replaceFile(t, h.sentimentPath, string(modelBytes(t, modeltest.TrainTopic(t, nil))))
	testkit.Eventually(t, "sentiment reload failure logged", func() bool {
		return h.logs.contains("model reload failed", "CLASSIFIER_SENTIMENT_MODEL", "not a sentiment model")
	})
	// A file cut short, as by a full disk.
	writeFile(t, h.sentimentPath, string(modelBytes(t, sentiment)[:100]))
	testkit.Eventually(t, "truncated model logged", func() bool {
		return h.logs.contains("model reload failed", "CLASSIFIER_SENTIMENT_MODEL", "truncated")
	})
	if h.svc.TopicModelVersion() != topic.Version() || h.svc.SentimentModelVersion() != sentiment.Version() {
		t.Errorf("versions in force %q, %q after bad files", h.svc.TopicModelVersion(), h.svc.SentimentModelVersion())
	}
	check("after bad sentiment models")

	// After bad files, a good one is taken.
	v2 := modeltest.TrainTopic(t, func(l string) string { return "v2-" + l })
	saveModel(t, v2, h.topicPath)
	testkit.Eventually(t, "v2 in force", func() bool { return h.svc.TopicModelVersion() == v2.Version() })
}

func TestNewRejectsBadModelFiles(t *testing.T) {
	infra := &lifecycle.Infra{Bus: testkit.Bus(t)}
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	writeFile(t, rulesPath, modeltest.Rules)
	topicPath := filepath.Join(dir, "topic.model")
	saveModel(t, modeltest.TrainTopic(t, nil), topicPath)
	corruptPath := filepath.Join(dir, "corrupt.model")
	writeFile(t, corruptPath, "FLMODEL\x00 not really")

	tests := []struct {
		name             string
		topic, sentiment string
		want             string
		wantIs           error
	}{
		{"missing topic model", filepath.Join(dir, "nope.model"), "", "CLASSIFIER_TOPIC_MODEL", os.ErrNotExist},
		{"corrupt topic model", corruptPath, "", "CLASSIFIER_TOPIC_MODEL " + corruptPath, model.ErrFormat},
		{"topic model as sentiment model", "", topicPath, "CLASSIFIER_SENTIMENT_MODEL " + topicPath + `: not a sentiment model: labels "account"`, classify.ErrSentimentLabels},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := classifier.DefaultConfig()
			cfg.Languages = nil
			cfg.RulesFile, cfg.TopicModel, cfg.SentimentModel = rulesPath, tt.topic, tt.sentiment
			_, err := classifier.New(cfg, infra)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.wantIs) {
				t.Errorf("New() = %v, want an error containing %q and wrapping %v", err, tt.want, tt.wantIs)
			}
		})
	}
}

// count is how many messages on subject the FEEDBACK stream holds.
func (h *harness) count(t *testing.T, subject string) int {
	t.Helper()
	s, err := h.bus.JetStream().Stream(ctxT(t), bus.StreamFeedback)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctxT(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subject])
}

// The service adapts the topic model's threshold to the feedback it
// classifies (CLASSIFIER_OOS_ADAPT_WINDOW): after a window of in-scope
// feedback, a text below the model's fixed threshold gets its topic.
func TestTopicThresholdAdaptsToTheFeedback(t *testing.T) {
	const inScope, offTopic = "My package still hasn't been delivered", "Wie spät ist es?"
	topic := modeltest.TrainTopic(t, nil)
	modeltest.SetCurve(t, topic, inScope, offTopic)
	h := startWithModels(t, topic, nil, nil)
	if h.svc.TopicModelVersion() != topic.Version() {
		t.Fatalf("topic model in force %q", h.svc.TopicModelVersion())
	}
	for range model.MinAdaptScores {
		h.publish(t, receivedEvent(inScope))
	}
	// Items are classified concurrently: wait for the window to fill.
	testkit.Eventually(t, "an out-of-scope estimate", func() bool { _, _, ok := h.svc.OOSAdaptation(); return ok })
	share, threshold, ok := h.svc.OOSAdaptation()
	if !ok || share != 0 || threshold >= topic.Threshold {
		t.Fatalf("after in-scope feedback: share %v threshold %v ok %v; fixed threshold %v", share, threshold, ok, topic.Threshold)
	}
	off := receivedEvent(offTopic)
	h.publish(t, off)
	out, _ := h.classified(t, off)
	if cls := out.GetClassified().GetClassification(); cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_MODEL {
		t.Errorf("below the fixed threshold after in-scope feedback: topics %v, source %v", cls.GetTopics(), cls.GetTopicSource())
	}
}
