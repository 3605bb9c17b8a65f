module github.com/feedloop/feedloop/services/classifier

go 1.26.7
