module github.com/feedloop/feedloop/services/router

go 1.26.7
