// Builds the dashboard into dist/ with fixed file names (no content hashes): the gateway embeds
// exactly dist/index.html, dist/assets/app.js and dist/assets/app.css and serves them at /dashboard.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/dashboard/",
  // `npm run dev`: the page's GraphQL calls go to a gateway running on its default port.
  server: {
    proxy: { "/graphql": { target: "http://127.0.0.1:8000", ws: true } },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    rollupOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/app[extname]",
      },
    },
  },
});
