"""Plans and installs: what to fetch, what to remove, what is already satisfied."""
