package client_test

import (
	"fmt"

	"github.com/adshare/adshare/transport/client"
)

// New takes the API's base URL, a path prefix included when the host
// mounts adshare under one; anything else is refused before a request.
func ExampleNew() {
	c, err := client.New("https://api.example.com/adshare", nil)
	fmt.Println(c != nil, err)
	_, err = client.New("api.example.com", nil)
	fmt.Println(err)
	// Output:
	// true <nil>
	// client: base URL "api.example.com": want an absolute http(s) URL such as https://api.example.com
}
