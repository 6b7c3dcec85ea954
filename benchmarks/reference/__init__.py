"""The reference app of issue 12's goal 1: the shape of a throwaway prototype."""
