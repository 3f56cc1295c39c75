package web

// parentRoutes registers the routes of the family's pages.
func (s *Server) parentRoutes() {}
