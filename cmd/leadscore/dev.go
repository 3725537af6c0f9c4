package main

import (
	"context"
	"errors"
	"io"
)

func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("dev: not wired yet")
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("demo: not wired yet")
}
