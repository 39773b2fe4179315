module github.com/nvmftest/nvmftest

go 1.26.8
