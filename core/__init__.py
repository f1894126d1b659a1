"""Ground floor: domain types and pure helpers shared by assets and resources."""
