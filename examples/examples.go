// Package examples holds the example directory the demo and the README use.
package examples

import _ "embed"

// Directory is examples/directory.yaml: five contacts and three services.
//
//go:embed directory.yaml
var Directory []byte
