module github.com/feedloop/feedloop/services/intake

go 1.26.7

require (
	github.com/feedloop/feedloop/pkg v0.0.0
	github.com/feedloop/feedloop/proto v0.0.0
)

replace github.com/feedloop/feedloop/pkg => ../../pkg

replace github.com/feedloop/feedloop/proto => ../../proto
