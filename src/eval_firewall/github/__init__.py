"""The GitHub Action: events in, a sticky comment, a check run and a job summary out.

The only package that imports PyGithub.
"""
