"""The daemon: scheduler, refresh jobs and the HTTP server over the published tree."""
