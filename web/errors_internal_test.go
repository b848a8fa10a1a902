package web

import (
	"net/http"
	"testing"

	"contactd/workflow"
)

func TestStatusOf(t *testing.T) {
	for code, want := range map[string]int{
		workflow.EInvalidRequest: 400, workflow.EInvalidNIC: 400, eUnauthorized: 401,
		workflow.ENotAContact: 403, workflow.ERoleNotAllowed: 403, eForbidden: 403,
		workflow.EUnknownService: 404, workflow.EUnknownContact: 404, workflow.ENotFound: 404,
		eMethodNotAllowed: 405, workflow.EConflict: 409, workflow.EGone: 410, eTooLarge: 413,
		eMediaType: 415, workflow.ENoChange: 422, workflow.EPaymentOverdue: 422,
		workflow.EUnavailable: 503, workflow.EInternal: 500, "stale": 500, "": 500,
	} {
		if got := statusOf(code); got != want {
			t.Errorf("statusOf(%q) = %d, want %d (%s)", code, got, want, http.StatusText(want))
		}
	}
}
