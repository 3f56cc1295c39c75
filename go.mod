module github.com/dermfollow/dermfollow

go 1.26.0
