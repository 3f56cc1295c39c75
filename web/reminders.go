package web

// reminderRoutes registers the routes of reminders.
func (s *Server) reminderRoutes() {}
