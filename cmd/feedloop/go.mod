module github.com/feedloop/feedloop/cmd/feedloop

go 1.26.7
