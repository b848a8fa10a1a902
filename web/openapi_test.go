package web_test

import (
	"context"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// openAPI is the part of docs/openapi.yaml the test reads.
type openAPI struct {
	OpenAPI string                          `yaml:"openapi"`
	Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	Comps   map[string]map[string]any       `yaml:"components"`
}

type operation struct {
	OperationID string                    `yaml:"operationId"`
	Responses   map[string]map[string]any `yaml:"responses"`
}

// loadOpenAPI reads docs/openapi.yaml, checks that every $ref names a
// component it defines, and returns its operations by "METHOD path".
func loadOpenAPI(t *testing.T) map[string]operation {
	t.Helper()
	data, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	for _, m := range regexp.MustCompile(`\$ref: '#/components/(\w+)/(\w+)'`).FindAllStringSubmatch(string(data), -1) {
		if _, ok := doc.Comps[m[1]][m[2]]; !ok {
			t.Errorf("docs/openapi.yaml refers to %s, which it does not define", m[0])
		}
	}
	ops := map[string]operation{}
	for path, item := range doc.Paths {
		for method, node := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
			default:
				continue
			}
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return ops
}

// TestOpenAPIMatchesRoutes checks that docs/openapi.yaml lists exactly the
// routes served outside the pages, and that each documented operation,
// called, answers with a status it documents.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	ops := loadOpenAPI(t)
	e := newEnv(t, redistest.Mini(t))
	var served, documented []string
	for _, r := range web.ServedRoutes(e.srv) {
		pattern := strings.SplitN(r, " ", 2)[1]
		if pattern != "/v" && !strings.HasPrefix(pattern, "/v/") && !strings.HasPrefix(pattern, "/r/") {
			served = append(served, r)
		}
	}
	for k := range ops {
		documented = append(documented, k)
	}
	sort.Strings(served)
	sort.Strings(documented)
	if diff := cmp.Diff(served, documented); diff != "" {
		t.Errorf("served routes (-) and docs/openapi.yaml (+) differ:\n%s", diff)
	}

	req := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	ho, err := e.store.CreateHandover(context.Background(), workflow.HandoverAsk{Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "nw2-ovh"}, Services: []string{"hosting-9", "overdue.org"}}, workflow.API, "")
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{"/api/v1/requests/{id}": req.ID, "/api/v1/services/{id}": "example.com", "{nic}": "ad1-ovh",
		"/api/v1/handovers/{id}": ho.ID}
	bodies := map[string]string{
		"createHandover": `{"requester":"ad1-ovh","changes":{"admin":"nw2-ovh"}}`,
		"resendHandover": `{"nic":"nw2-ovh"}`,
		"cancelHandover": `{"nic":"ad1-ovh"}`,
		"createRequest":  `{"service":"hosting-9","requester":"ad1-ovh","changes":{"billing":"nw1-ovh"}}`,
		"resendRequest":  `{"nic":"nw1-ovh"}`,
		"cancelRequest":  `{"nic":"ad1-ovh"}`,
		"postDecision":   `{"token":"` + e.token(req.ID, "ad1-ovh") + `","decision":"accept"}`,
		"putContact":     `{"email":"alice@example.com","name":"Alice Admin","language":"en"}`,
		"putService":     `{"kind":"domain","admin":"ad1-ovh","tech":"te1-ovh","billing":"bi1-ovh"}`,
	}
	// Resend before cancel, so both succeed.
	sort.Slice(documented, func(i, j int) bool { return strings.HasSuffix(documented[j], "/cancel") })
	for _, key := range documented {
		op := ops[key]
		method, path, _ := strings.Cut(key, " ")
		for k, v := range params {
			if strings.HasPrefix(k, "{") {
				path = strings.ReplaceAll(path, k, v)
			} else if strings.HasPrefix(path, k) {
				path = strings.Replace(path, "{id}", v, 1)
			}
		}
		if strings.HasSuffix(key, "/api/v1/requests") && method == "GET" {
			path += "?nic=ad1-ovh"
		}
		w := e.api(method, path, bodies[op.OperationID])
		if _, ok := op.Responses[strconv.Itoa(w.Code)]; !ok {
			t.Errorf("%s (%s %s) answered %d, which docs/openapi.yaml does not list: %s", key, method, path, w.Code, w.Body)
		}
		if w.Code >= 300 {
			t.Errorf("%s (%s %s) with a valid call = %d: %s", key, method, path, w.Code, w.Body)
		}
	}
}

// operationOf finds the documented operation a concrete call reaches.
func operationOf(ops map[string]operation, method, path string) (operation, bool) {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	for key, op := range ops {
		m, tmpl, _ := strings.Cut(key, " ")
		parts := strings.Split(tmpl, "/")
		if m != method || len(parts) != len(segs) {
			continue
		}
		match := true
		for i, p := range parts {
			if p != segs[i] && !(strings.HasPrefix(p, "{") && segs[i] != "") {
				match = false
				break
			}
		}
		if match {
			return op, true
		}
	}
	return operation{}, false
}
