"""One Kedro pipeline per stage of UNGER."""
