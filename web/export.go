package web

// exportRoutes registers the routes of research exports.
func (s *Server) exportRoutes() {}
