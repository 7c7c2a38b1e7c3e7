// Package pgverify checks a restored PostgreSQL data directory: it starts
// PostgreSQL on a copy of it, on a private Unix socket and as an
// unprivileged user, runs one query with psql and compares the single value
// it returns with an expected one. It is what `stashplane verify postgres`
// runs inside the postgres-query-verifier Function's Job.
package pgverify

import (
	"fmt"
	"math/big"
	"regexp"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// Operators lists the operators Compare knows, in the order documented.
var Operators = []string{
	corev1alpha1.OperatorEqual,
	corev1alpha1.OperatorNotEqual,
	corev1alpha1.OperatorLessThan,
	corev1alpha1.OperatorLessThanOrEqual,
	corev1alpha1.OperatorGreaterThan,
	corev1alpha1.OperatorGreaterThanOrEqual,
}

// decimal is a plain decimal number as PostgreSQL prints one: a sign,
// digits, a fraction, an exponent of at most four digits. Hexadecimal,
// binary, octal, digit separators and fractions such as "1/2", which
// big.Rat also reads, are text.
var decimal = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?$`)

// number reads s as a plain decimal number.
func number(s string) (*big.Rat, bool) {
	if !decimal.MatchString(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// Compare says whether got stands in the relation op to want. When both
// are plain decimal numbers (integers or decimals, of any size) they are
// compared as numbers, so "5" equals "5.0"; otherwise Equal and NotEqual compare the
// text exactly and the ordering operators are an error.
func Compare(got, op, want string) (bool, error) {
	g, gok := number(got)
	w, wok := number(want)
	if gok && wok {
		c := g.Cmp(w)
		switch op {
		case corev1alpha1.OperatorEqual:
			return c == 0, nil
		case corev1alpha1.OperatorNotEqual:
			return c != 0, nil
		case corev1alpha1.OperatorLessThan:
			return c < 0, nil
		case corev1alpha1.OperatorLessThanOrEqual:
			return c <= 0, nil
		case corev1alpha1.OperatorGreaterThan:
			return c > 0, nil
		case corev1alpha1.OperatorGreaterThanOrEqual:
			return c >= 0, nil
		}
		return false, fmt.Errorf("cannot compare with operator %q: it is none of %v", op, Operators)
	}
	switch op {
	case corev1alpha1.OperatorEqual:
		return got == want, nil
	case corev1alpha1.OperatorNotEqual:
		return got != want, nil
	case corev1alpha1.OperatorLessThan, corev1alpha1.OperatorLessThanOrEqual,
		corev1alpha1.OperatorGreaterThan, corev1alpha1.OperatorGreaterThanOrEqual:
		return false, fmt.Errorf("cannot compare %q with %q using %s: both must be numbers", got, want, op)
	}
	return false, fmt.Errorf("cannot compare with operator %q: it is none of %v", op, Operators)
}
