package accounts

import (
	"context"
	"net/netip"

	"github.com/dermfollow/dermfollow/followup"
)

// SignInStep is what a sign-in needs next, after a step that passed.
type SignInStep string

const (
	// StepDone: the user is signed in.
	StepDone SignInStep = "done"
	// StepSecondFactor: ask for one of SecondFactorState.Methods (VerifySecondFactor, or
	// BeginLogin and FinishLogin for a passkey) before the session is signed in.
	StepSecondFactor SignInStep = "second_factor"
	// StepEnrol: a second factor is required and the user has none; the session may do
	// nothing but set one up (BeginTOTP and ConfirmTOTP, or BeginRegistration and
	// FinishRegistration) until it has.
	StepEnrol SignInStep = "enrol"
)

// Next is the step after the password for a user in this state. A user who set up a second
// factor is asked for it even where none is required: it is there to protect the account.
func (st SecondFactorState) Next() SignInStep {
	switch {
	case st.Enrolled:
		return StepSecondFactor
	case st.Required:
		return StepEnrol
	}
	return StepDone
}

// SignInResult is a password that passed, and what the sign-in needs next.
type SignInResult struct {
	// Actor is the user as they act once signed in. Until Next is StepDone a page keeps only
	// Actor.ID in the session, as a sign-in in progress, never as a signed-in user.
	Actor        followup.Actor
	User         User
	Next         SignInStep
	SecondFactor SecondFactorState
}

// SignIn is Authenticate followed by SecondFactorState: the first step of a page's sign-in,
// with the same errors and throttling as Authenticate. The page routes on Next.
func (s *Service) SignIn(ctx context.Context, email, password string, addr netip.Addr) (SignInResult, error) {
	a, u, err := s.Authenticate(ctx, email, password, addr)
	if err != nil {
		return SignInResult{}, err
	}
	st, err := s.SecondFactorState(ctx, u.ID)
	if err != nil {
		return SignInResult{}, err
	}
	return SignInResult{Actor: a, User: u, Next: st.Next(), SecondFactor: st}, nil
}
