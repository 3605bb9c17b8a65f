module github.com/feedloop/feedloop/services/classifier

go 1.26.7

require (
	github.com/feedloop/feedloop/pkg v0.0.0
	github.com/feedloop/feedloop/proto v0.0.0
)

require (
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/pemistahl/lingua-go v1.4.0 // indirect
	github.com/shopspring/decimal v1.3.1 // indirect
	golang.org/x/exp v0.0.0-20260824195058-e88cd73687aa // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace github.com/feedloop/feedloop/pkg => ../../pkg

replace github.com/feedloop/feedloop/proto => ../../proto
