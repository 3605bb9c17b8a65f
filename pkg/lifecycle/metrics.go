package lifecycle

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// ObserveRedis reports feedloop_redis_up at every collection: 1 when rdb
// answers a PING within a second, else 0. (NATS health comes from the bus.)
// The returned func stops reporting.
func ObserveRedis(mp metric.MeterProvider, rdb redis.UniversalClient) (stop func()) {
	meter := mp.Meter("github.com/feedloop/feedloop/pkg/lifecycle")
	up, err := meter.Int64ObservableGauge("feedloop.redis.up",
		metric.WithDescription("1 while Redis answers a PING within a second, else 0."))
	if err != nil {
		otel.Handle(err)
		return func() {}
	}
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		v := int64(1)
		if rdb.Ping(pctx).Err() != nil {
			v = 0
		}
		o.ObserveInt64(up, v)
		return nil
	}, up)
	if err != nil {
		otel.Handle(err)
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}
