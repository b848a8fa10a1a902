package web

// ServedRoutes lists "METHOD pattern" for every route the server answers.
func ServedRoutes(s *Server) []string {
	var out []string
	for _, r := range s.routeTable() {
		out = append(out, r.Method+" "+r.Pattern)
	}
	return out
}
