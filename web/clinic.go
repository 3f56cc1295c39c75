package web

// clinicRoutes registers the routes of the clinician's pages.
func (s *Server) clinicRoutes() {}
