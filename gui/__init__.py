"""Qt desktop app (arrives with the desktop-app issue); imports core, never torch directly."""
