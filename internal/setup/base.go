package setup

import "context"

func withBase(ctx context.Context, base string) context.Context {
	return context.WithValue(ctx, baseKey{}, base)
}

func baseOf(ctx context.Context) string {
	b, _ := ctx.Value(baseKey{}).(string)
	return b
}
