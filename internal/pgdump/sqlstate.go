package pgdump

import "regexp"

// sqlStateRE finds the SQLSTATE psql prints in verbose mode, as in
// "ERROR:  42P01: relation ... does not exist".
var sqlStateRE = regexp.MustCompile(`(?m)\b(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):`)

// SQLState is the first SQLSTATE in psql's verbose output, or "".
func SQLState(out string) string {
	if m := sqlStateRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// sqlStateClasses name the SQLSTATE classes a dump, a load or a verifier
// query meets most.
var sqlStateClasses = map[string]string{
	"08": "connection exception",
	"0A": "feature not supported",
	"22": "data exception",
	"23": "integrity constraint violation",
	"25": "invalid transaction state",
	"28": "invalid authorization specification",
	"3D": "invalid catalog name",
	"3F": "invalid schema name",
	"40": "transaction rollback",
	"42": "syntax error or access rule violation",
	"53": "insufficient resources",
	"54": "program limit exceeded",
	"57": "operator intervention",
	"58": "system error",
	"XX": "internal error",
}

// SQLStateClass names the class of an SQLSTATE.
func SQLStateClass(code string) string {
	if c, ok := sqlStateClasses[code[:2]]; ok {
		return c
	}
	return "class " + code[:2]
}
