"""Side-by-side performance runs of the two functions, their floor and the original lesson."""
