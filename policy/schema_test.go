package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite configs/schema/policy.schema.json from the Go types")

const schemaFile = "../configs/schema/policy.schema.json"

// The committed schema must be what the Go types generate. Regenerate with
// `go generate ./policy` (or go test ./policy -run TestSchemaUpToDate -update).
func TestSchemaUpToDate(t *testing.T) {
	got, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v (run go generate ./policy)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go generate ./policy", schemaFile)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSON turns a YAML document into the JSON value a schema validator takes.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every example policy validates against the schema, and the schema catches what Parse
// catches for misspelt fields and bad enums.
func TestSchemaValidatesExamples(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("../configs/policies/*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, bad := range []string{
		"apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mdoe: auto\n",
		"apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: sometimes\n",
		"apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  interval: soon\n",
		"kind: Policy\n",
	} {
		if err := s.Validate(yamlToJSON(t, []byte(bad))); err == nil {
			t.Errorf("schema accepts %q", strings.TrimSpace(bad))
		}
	}
}
