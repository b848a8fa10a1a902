// Package examples holds the example directory the demo and the README use.
package examples

import _ "embed"

// Directory is examples/directory.yaml: six contacts and six services.
//
//go:embed directory.yaml
var Directory []byte
