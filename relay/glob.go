package relay

// Glob is a pattern in which '*' matches any run of characters (dots and slashes included) and every other
// character matches itself: "com.twilio.messaging.message.*", "*/Messages/*".
type Glob string

// Match reports whether s matches the pattern.
func (g Glob) Match(s string) bool {
	p := string(g)
	// Iterative matching with backtracking to the last star: linear in practice, no recursion.
	var px, sx, starP, starS = 0, 0, -1, 0
	for sx < len(s) {
		switch {
		case px < len(p) && p[px] == '*':
			starP, starS = px, sx
			px++
		case px < len(p) && p[px] == s[sx]:
			px++
			sx++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// Globs is a list of patterns: it matches what one of them matches, and an empty list matches everything
// (a route's criterion left out).
type Globs []Glob

// Match reports whether s matches one of the patterns, or the list is empty.
func (gs Globs) Match(s string) bool {
	if len(gs) == 0 {
		return true
	}
	for _, g := range gs {
		if g.Match(s) {
			return true
		}
	}
	return false
}
