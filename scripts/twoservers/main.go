// Command twoservers puts the balancer (scripts/balancer) in front of two running servers, for
// `make two-servers`: go run ./scripts/twoservers -listen 127.0.0.1:8080 URL URL.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/dermfollow/dermfollow/scripts/balancer"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address of the balancer")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: twoservers [-listen addr] URL...")
	}
	b := balancer.New(flag.Args()...)
	defer b.Close()
	log.Printf("balancing %v on http://%s", flag.Args(), *listen)
	log.Fatal(http.ListenAndServe(*listen, b))
}
