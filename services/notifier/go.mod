module github.com/feedloop/feedloop/services/notifier

go 1.26.7
