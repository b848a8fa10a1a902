package config

import (
	"os"
	"path/filepath"
	"strings"
)

// credentialPrefix names the credentials of a directory loaded whole by
// systemd: LoadCredential=contactd:/etc/contactd/credentials gives each
// file F of it as the credential contactd_F.
const credentialPrefix = "contactd_"

// lookupVar reads the value of ${name}: from the environment, else from
// the systemd credential of that name ($CREDENTIALS_DIRECTORY/name or
// $CREDENTIALS_DIRECTORY/contactd_name), one final newline removed. A
// secret passed as a credential stays out of the environment, which the
// token commands inherit.
func lookupVar(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok {
		return v, true
	}
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return "", false
	}
	for _, file := range []string{name, credentialPrefix + name} {
		if b, err := os.ReadFile(filepath.Join(dir, file)); err == nil {
			return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), true
		}
	}
	return "", false
}
