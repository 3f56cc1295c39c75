package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// The signed-in user's API tokens: issued with a name, a lifetime and a role no higher than
// the user's, shown once, listed with their last use, and revoked. Issuing one asks for a
// recent second factor (requireStepUp): a token outlives the session.

// tokenDays are the lifetimes the form offers, in days; the first is the default.
var tokenDays = []int{90, 30, 7, 180, 365}

type tokensData struct {
	Tokens  []accounts.Token
	Roles   []string
	Days    []int
	In      tokenForm
	Error   string
	Created string // the token just issued: shown this once
}

type tokenForm struct {
	Name, Role string
	Days       int
}

func (s *Server) tokensPage(c echo.Context) error {
	a := actorOf(c)
	return s.renderTokens(c, http.StatusOK, tokensData{In: tokenForm{Role: a.Role, Days: tokenDays[0]}})
}

func (s *Server) renderTokens(c echo.Context, status int, d tokensData) error {
	a := actorOf(c)
	list, err := s.accounts.ListTokens(c.Request().Context(), a, a.ID)
	if err != nil {
		return err
	}
	d.Tokens, d.Roles, d.Days = list, accounts.TokenRoles(a.Role), tokenDays
	return s.langPage(c, status, "si_tokens_title", tokensPage(d))
}

func (s *Server) tokenIssue(c echo.Context) error {
	a := actorOf(c)
	lang := clinicLang(c)
	in := tokenForm{Name: strings.TrimSpace(c.FormValue("name")), Role: c.FormValue("role")}
	days, err := strconv.Atoi(c.FormValue("days"))
	in.Days = days
	bad := func(msg string) error {
		return s.renderTokens(c, http.StatusUnprocessableEntity, tokensData{In: in, Error: msg})
	}
	switch n := utf8.RuneCountInString(in.Name); {
	case n == 0 || n > accounts.MaxTokenName:
		return bad(trf(lang, "si_token_name_bad", itoa(accounts.MaxTokenName)))
	case err != nil || !slices.Contains(tokenDays, days):
		return bad(tr(lang, "si_token_days_bad"))
	case !slices.Contains(accounts.TokenRoles(a.Role), in.Role):
		return bad(tr(lang, "si_token_role_bad"))
	}
	ctx := c.Request().Context()
	u, err := s.accounts.CurrentUser(ctx, a)
	if err != nil {
		return err
	}
	_, token, err := s.accounts.IssueToken(ctx, a, accounts.NewToken{Email: u.Email, Name: in.Name, Role: in.Role,
		Lifetime: time.Duration(days) * 24 * time.Hour})
	if followup.ErrorCode(err) == followup.EINVALID {
		return bad(trf(lang, "si_token_too_many", itoa(accounts.MaxActiveTokens)))
	}
	if err != nil {
		return err
	}
	return s.renderTokens(c, http.StatusCreated, tokensData{In: tokenForm{Role: a.Role, Days: tokenDays[0]}, Created: token})
}

func (s *Server) tokenRevoke(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.accounts.RevokeTokenByID(c.Request().Context(), actorOf(c), id); err != nil {
		return err
	}
	s.flashIn(c, "si_token_revoked")
	return c.Redirect(http.StatusSeeOther, "/account/tokens")
}
