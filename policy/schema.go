package policy

import (
	"encoding/json"

	"github.com/invopop/jsonschema"
)

//go:generate go test -run ^TestSchemaUpToDate$ -update

// SchemaID is the $id of the policy file's JSON schema.
const SchemaID = "https://godwit.io/schemas/policy.schema.json"

// Schema returns the JSON schema of the policy file format (FileV1), generated from the Go
// types; configs/schema/policy.schema.json holds a copy for editors, which a test keeps
// up to date.
func Schema() ([]byte, error) {
	r := &jsonschema.Reflector{
		ExpandedStruct:             true,
		RequiredFromJSONSchemaTags: true,
	}
	s := r.Reflect(&FileV1{})
	s.ID = SchemaID
	s.Title = "godwit policy"
	s.Description = "A godwit policy file (apiVersion godwit.io/v1, kind Policy): what the migration scheduler may move, when and why."
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
